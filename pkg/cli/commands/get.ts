/**
 * `shoal get KIND [NAME]` and `shoal events`: tables or objects, optionally followed by a watch
 * (`-w`) that prints one row per change under the first table.
 */
import type { Command } from 'commander';
import { lookupKind, type KindInfo } from '../../api/kinds';
import type { ShoalObject } from '../../api/validation';
import type { Task } from '../../api/types.generated';
import { allocationsByNode, type NodeAllocation } from '../../api/allocation';
import type { ResourceClient } from '../client';
import { parseKindArgs, parseOutput, type KindRef, type OutputFormat } from '../args';
import { contextOf, type CommandContext } from '../context';
import { ApiError, CliError, messageOf } from '../errors';
import type { CliIO } from '../io';
import {
  addTaskColumns, emptyListMessage, formatList, formatObject, isObjectFormat, sortForDisplay, tableHeader, tableNeedsTasks, tableRow, type TableOptions,
} from '../printers';
import { columnWidths, formatRow } from '../table';

/** Flags of `get` and `events`. */
export interface GetOptions {
  output?: string;
  selector?: string;
  allNamespaces?: boolean;
  watch?: boolean;
}

/** Prints a table whose rows may keep coming (watch), aligned to the first rows printed. */
export class TableStream {
  private widths?: number[];

  constructor(private readonly out: (line: string) => void, private readonly header: string[]) {}

  /** Prints the header and the rows; nothing at all when there are no rows. */
  printAll(rows: string[][]): void {
    if (!rows.length) return;
    this.widths = columnWidths([this.header, ...rows]);
    this.out(formatRow(this.header, this.widths));
    for (const row of rows) this.out(formatRow(row, this.widths));
  }

  /** Prints one more row (and the header first, if nothing was printed yet). */
  printRow(row: string[]): void {
    if (!this.widths) {
      this.widths = columnWidths([this.header, row]);
      this.out(formatRow(this.header, this.widths));
    }
    this.out(formatRow(row, this.widths));
  }
}

/** Prints objects one by one (`-o json|yaml|name` with `-w`); YAML documents are separated by `---`. */
class ObjectStream {
  private count = 0;

  constructor(private readonly out: (line: string) => void, private readonly kind: KindInfo, private readonly format: 'json' | 'yaml' | 'name') {}

  print(obj: ShoalObject): void {
    if (this.format === 'yaml' && this.count > 0) this.out('---');
    this.count++;
    this.out(formatObject(this.kind, obj, this.format));
  }
}

/**
 * The server-side sums of what live tasks hold per node (`GET /api/v1/nodeallocations`, readable
 * by anyone who may read nodes), not a list of every task, which needs task read in every
 * namespace. Not a registered kind: it is computed, never written. An apiserver without it (404,
 * older) falls back to summing the tasks this user can list across namespaces. Errors are
 * returned as text for the caller to show instead of the allocation.
 */
export async function nodeAllocations(client: ResourceClient): Promise<NodeAllocation[] | string> {
  try {
    return (await client.list(NODE_ALLOCATIONS, undefined)).items as unknown as NodeAllocation[];
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.code !== 404) return `<unable to read allocation: ${messageOf(err)}>`;
  }
  try {
    return allocationsByNode((await client.list(lookupKind('tasks')!, undefined)).items as Task[]);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return `<unable to read allocation: ${messageOf(err)}>`;
  }
}

/** The computed `nodeallocations` resource, addressed like a cluster-scoped kind (not in KINDS: never written). */
const NODE_ALLOCATIONS: KindInfo = {
  kind: 'NodeAllocation', plural: 'nodeallocations', singular: 'nodeallocation', shortNames: [], namespaced: false, schema: '', verbs: ['get', 'list'],
};

function checkGetArgs(ref: KindRef, opts: GetOptions): void {
  if (ref.name && opts.allNamespaces && ref.kind.namespaced) {
    throw new CliError('a resource cannot be retrieved by name across all namespaces (drop -A)');
  }
  if (ref.name && opts.selector) throw new CliError('a name and a label selector (-l) cannot be combined');
}

/** Runs `get` for a parsed kind and name. */
export async function runGet(ctx: CommandContext, ref: KindRef, opts: GetOptions): Promise<void> {
  checkGetArgs(ref, opts);
  const format = parseOutput(opts.output);
  const { kind, name } = ref;
  const allNamespaces = Boolean(opts.allNamespaces) && kind.namespaced;
  const namespace = ctx.namespaceFor(kind, allNamespaces);
  const client = ctx.client();
  const table: TableOptions = { wide: format === 'wide', allNamespaces, now: ctx.io.now() };
  if (kind.kind === 'Node' && !isObjectFormat(format)) {
    const allocations = await nodeAllocations(client);
    // A user who may not see them still gets the nodes, with ALLOCATED <none>.
    if (typeof allocations !== 'string') table.allocated = new Map(allocations.map((a) => [a.metadata.name, a.allocated]));
  } else if (tableNeedsTasks(kind) && !isObjectFormat(format)) {
    // Frameworks are readable by any user, their tasks only with a cluster-wide role: without
    // one, the frameworks are still listed, with TASKS <none>.
    const tasks = await client.list(lookupKind('tasks')!, undefined).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === 403) return undefined;
      throw err;
    });
    if (tasks) addTaskColumns(kind, table, tasks.items as Task[]);
  }
  let items: ShoalObject[];
  let resourceVersion: string | undefined;
  if (name) {
    const obj = await client.get(kind, namespace, name);
    items = [obj];
    resourceVersion = obj.metadata.resourceVersion;
  } else {
    const list = await client.list(kind, namespace, { labelSelector: opts.selector });
    items = sortForDisplay(kind, list.items);
    resourceVersion = list.metadata.resourceVersion;
  }
  if (!opts.watch) return printOnce(ctx, kind, items, { single: Boolean(name), namespace, format, table, resourceVersion });
  const print = streamPrinter(ctx, kind, format, table);
  print.initial(items);
  for await (const ev of client.watch(kind, namespace, { resourceVersion, labelSelector: opts.selector, known: items })) {
    if (!name || ev.object.metadata.name === name) print.one(ev.object);
  }
}

interface OnceOptions {
  single: boolean;
  namespace: string | undefined;
  format: OutputFormat;
  table: TableOptions;
  resourceVersion: string | undefined;
}

function printOnce(ctx: CommandContext, kind: KindInfo, items: ShoalObject[], o: OnceOptions): void {
  const out = (line: string) => ctx.out(line);
  if (isObjectFormat(o.format)) {
    const text = o.single ? formatObject(kind, items[0], o.format) : formatList(kind, items, o.resourceVersion, o.format);
    if (text) out(text);
    if (!items.length && o.format === 'name') ctx.err(emptyListMessage(kind, o.namespace));
    return;
  }
  if (!items.length) return ctx.err(emptyListMessage(kind, o.namespace));
  new TableStream(out, tableHeader(kind, o.table)).printAll(items.map((obj) => tableRow(kind, obj, o.table)));
}

function streamPrinter(ctx: CommandContext, kind: KindInfo, format: OutputFormat, table: TableOptions) {
  const out = (line: string) => ctx.out(line);
  if (isObjectFormat(format)) {
    const objects = new ObjectStream(out, kind, format);
    return { initial: (items: ShoalObject[]) => items.forEach((o) => objects.print(o)), one: (o: ShoalObject) => objects.print(o) };
  }
  const rows = new TableStream(out, tableHeader(kind, table));
  // Rows printed later use the clock at that time, so AGE stays meaningful while watching.
  const row = (o: ShoalObject) => tableRow(kind, o, { ...table, now: ctx.io.now() });
  return { initial: (items: ShoalObject[]) => rows.printAll(items.map(row)), one: (o: ShoalObject) => rows.printRow(row(o)) };
}

function addGetFlags(command: Command): Command {
  return command
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-o, --output <format>', 'wide, yaml, json or name')
    .option('-w, --watch', 'after listing, print every change until interrupted');
}

/** Registers `get` and `events`. */
export function registerGet(program: Command, io: CliIO): void {
  addGetFlags(program.command('get').argument('<kind>', 'app, job, jobrun (jr), framework (fw), task, node, event (or KIND/NAME)').argument('[name]'))
    .description('List objects of a kind, or show one')
    .option('-l, --selector <selector>', 'label selector, e.g. app=web,tier!=db')
    .action(async (kindArg: string, nameArg: string | undefined, opts: GetOptions, command: Command) => {
      await runGet(contextOf(io, command), parseKindArgs(kindArg, nameArg), opts);
    });
  addGetFlags(program.command('events'))
    .description('List events, oldest first')
    .action(async (opts: GetOptions, command: Command) => {
      await runGet(contextOf(io, command), { kind: lookupKind('events')! }, opts);
    });
}
