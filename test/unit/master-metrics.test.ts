/** A controller-manager that leads again builds a new Master on the same metrics registry. */
import { Registry } from 'prom-client';
import { Master, type MasterOptions } from '../../pkg/master/master';
import { silentLogger } from '../../pkg/util/log';

it('aSecondTermRegistersItsMetricsOnTheSameRegistry', async () => {
  const registry = new Registry();
  const options = { registry, logger: silentLogger(), prefix: '/shoal' } as unknown as MasterOptions;
  new Master(options);
  expect(() => new Master(options)).not.toThrow();
  const text = await registry.metrics();
  expect(text.match(/^# TYPE shoal_offers_total counter$/gm)).toHaveLength(1);
  expect(text).toMatch(/^shoal_agents\{state="alive"\} 0$/m);
});
