/**
 * Shoal's layers, checked by `make test` (`make layers`): a package may import only from the
 * packages below it, and nothing may form a cycle. Lowest first:
 *
 *   util → api → store → client → scheduler (pure) → runtime → master → controllers → agent
 *   → apiserver → devcluster → cli → cmd
 *
 * (runtime, agent and apiserver do not use each other; devcluster wires every component, the CLI
 * starts devcluster for `shoal dev`.) A new import against these rules fails the build; change
 * the rules here, with a reason, only when the layering itself changes.
 */
const pkg = (name) => `^pkg/${name}/`;

/** For each package, the packages it may import from (besides itself, Node and npm packages). */
const allowed = {
  util: [],
  api: ['util', 'schemas'],
  store: ['util', 'api'],
  client: ['util', 'api', 'store'],
  // Pure decision code: no store, no clients, no timers of its own.
  scheduler: ['util', 'api'],
  runtime: ['util', 'api'],
  master: ['util', 'api', 'store', 'client', 'scheduler'],
  controllers: ['util', 'api', 'store', 'client', 'scheduler', 'master'],
  agent: ['util', 'api', 'store', 'client', 'runtime'],
  apiserver: ['util', 'api', 'store', 'client'],
  devcluster: ['util', 'api', 'store', 'client', 'runtime', 'master', 'controllers', 'agent', 'apiserver'],
  cli: ['util', 'api', 'client', 'devcluster'],
};

const layerRules = Object.entries(allowed).map(([from, to]) => ({
  name: `layer-${from}`,
  comment: `pkg/${from} may import only from ${to.length ? to.map((t) => `pkg/${t}`).join(', ') : 'nothing else in pkg'}`,
  severity: 'error',
  from: { path: pkg(from) },
  to: {
    path: '^(pkg|cmd|test|schemas)/',
    pathNot: [pkg(from), ...to.map((t) => (t === 'schemas' ? '^schemas/' : pkg(t)))],
  },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules must not depend on each other in a cycle.',
      severity: 'error',
      from: { path: '^(pkg|cmd)/' },
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'cmd-is-thin',
      comment: 'cmd/<binary> wires packages; no package imports a binary.',
      severity: 'error',
      from: { path: '^pkg/' },
      to: { path: '^cmd/' },
    },
    {
      name: 'pkg-not-test',
      comment: 'Production code never imports tests or their harness.',
      severity: 'error',
      from: { path: '^(pkg|cmd)/' },
      to: { path: '^test/' },
    },
    {
      name: 'scheduler-no-io',
      comment: 'pkg/scheduler is pure: no Node I/O modules.',
      severity: 'error',
      from: { path: pkg('scheduler') },
      to: { dependencyTypes: ['core'], path: '^(fs|net|http|https|child_process|dgram|dns|tls|timers|worker_threads)$|^node:(fs|net|http|https|child_process|dgram|dns|tls|timers|worker_threads)' },
    },
    {
      name: 'scheduler-no-npm-io',
      comment: 'pkg/scheduler is pure: no etcd, HTTP, Docker or logging clients.',
      severity: 'error',
      from: { path: pkg('scheduler') },
      to: { dependencyTypes: ['npm', 'npm-dev'], path: 'etcd3|express|dockerode|pino|prom-client' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^(dist|dist-bench|node_modules)/' },
  },
};
