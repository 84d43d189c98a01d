// `guru services`, `guru service` and `guru reg`: typed services and registry
// operations on an agent, within the technician's active tunnel to it (or one
// opened for the call and closed after it, unless --keep-tunnel). Plain lines
// for people, --json for scripts. Exit code 0 on success, 1 when the server
// or the agent refused or failed (the message says why), 3 when a service
// control did not reach its new state within --wait.
import { Code, ConnectError } from "@connectrpc/connect";
import { RegistryValueType, type RegistryValue, type Service } from "../gen/guru/api/v1/system_pb.js";
import type { ApiClients } from "../lib/api-client.ts";
import { GuruError } from "../lib/errors.ts";
import { parseArgs, type ParsedArgs } from "../lib/flags.ts";
import { apiAction, apiValueType, fromApiService, valueTypeOfApi } from "../lib/system-api-convert.ts";
import { registryValueTypes, serviceActions, type RegistryValueType as TypeName, type ServiceAction as ActionName } from "../lib/system-types.ts";
import { connect, resolveAgent, str, tunnelTo } from "./connection.ts";
import { parseTimeoutMs } from "./run-command.ts";

const out = (line: string) => process.stdout.write(`${line}\n`);
const exitNotSettled = 3;

function serviceJson(s: Service | undefined) {
  if (s === undefined) return null;
  const p = fromApiService(s);
  return { ...p, startMode: p.startMode === "unspecified" ? null : p.startMode, pid: p.pid || null };
}

const typeLabel = (t: RegistryValueType) => `REG_${(valueTypeOfApi(t) ?? "none").toUpperCase()}`;

function valueJson(v: RegistryValue | undefined) {
  if (v === undefined) return null;
  return { name: v.name, type: typeLabel(v.type), data: v.type === RegistryValueType.MULTI_SZ ? v.multiString : v.data };
}

function valueText(v: RegistryValue | undefined): string {
  if (v === undefined) return "(absent)";
  const data = v.type === RegistryValueType.MULTI_SZ ? v.multiString.map((s) => JSON.stringify(s)).join(", ") : v.data;
  return `${typeLabel(v.type)} ${data}`;
}

/** "state, start mode, pid" for people. */
function serviceText(s: Service | undefined): string {
  if (s === undefined) return "?";
  const p = fromApiService(s);
  return `${p.state}, ${p.startMode === "unspecified" ? "-" : p.startMode}${p.pid ? `, pid ${p.pid}` : ""}`;
}

/** Runs `fn` in the technician's tunnel to the agent; a Connect error becomes a message and exit code 1. */
async function inTunnel(
  command: string,
  args: ParsedArgs,
  target: string | undefined,
  usage: string,
  fn: (api: ApiClients, sessionId: string) => Promise<number>,
): Promise<number> {
  if (target === undefined) throw new GuruError("invalid", usage);
  const api = connect(args.flags);
  let tunnel: { sessionId: string; opened: boolean } | undefined;
  try {
    const agent = await resolveAgent(api, target);
    tunnel = await tunnelTo(api, agent.agentId);
    return await fn(api, tunnel.sessionId);
  } catch (err) {
    if (err instanceof ConnectError) {
      process.stderr.write(`guru ${command}: ${err.code === Code.Unknown ? err.message : err.rawMessage}\n`);
      return 1;
    }
    throw err;
  } finally {
    // Tunnels are exclusive per agent: do not hold one opened only for this call.
    if (tunnel?.opened && !args.flags["keep-tunnel"]) await api.sessions.closeTunnel({ sessionId: tunnel.sessionId }).catch(() => undefined);
  }
}

const booleans = ["json", "dry-run", "keep-tunnel"];

export async function servicesCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, booleans);
  const [target, filter] = args.positionals;
  return inTunnel("services", args, target, "usage: guru services AGENT [FILTER] [--json]", async (api, sessionId) => {
    const r = await api.system.listServices({ sessionId, filter: filter ?? "" });
    if (args.flags.json) {
      out(JSON.stringify({ serviceManager: r.serviceManager, services: r.services.map(serviceJson) }));
      return 0;
    }
    if (r.services.length === 0) out(filter ? `no service matches "${filter}" (${r.serviceManager})` : `no services (${r.serviceManager})`);
    const width = Math.max(4, ...r.services.map((s) => s.name.length));
    for (const s of r.services.map(fromApiService)) {
      out(
        `${s.name.padEnd(width)}  ${s.state.padEnd(8)}  ${(s.startMode === "unspecified" ? "-" : s.startMode).padEnd(9)}  ${String(s.pid || "-").padStart(7)}  ${s.displayName}`,
      );
    }
    return 0;
  });
}

export async function serviceCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, booleans);
  const [target, name, actionName] = args.positionals;
  const usage = "usage: guru service AGENT NAME start|stop|restart|enable|disable [--dry-run] [--wait 30s] [--json]";
  if (name === undefined || !serviceActions.includes(actionName as ActionName)) throw new GuruError("invalid", usage);
  const action = actionName as ActionName;
  const waitMs = parseTimeoutMs(str(args.flags.wait));
  return inTunnel("service", args, target, usage, async (api, sessionId) => {
    const r = await api.system.controlService({ sessionId, name, action: apiAction(action), dryRun: args.flags["dry-run"] === true, waitMs });
    if (args.flags.json) {
      out(
        JSON.stringify({
          name,
          action,
          dryRun: r.dryRun,
          changed: r.changed,
          settled: r.settled,
          serviceManager: r.serviceManager,
          before: serviceJson(r.before),
          after: serviceJson(r.after),
        }),
      );
    } else {
      const what = r.dryRun
        ? r.changed
          ? "would change"
          : "nothing to do"
        : r.changed
          ? r.settled
            ? "done"
            : "not settled within the wait"
          : "nothing to do";
      out(`${name} ${action}${r.dryRun ? " (dry run)" : ""}: ${serviceText(r.before)} → ${serviceText(r.after)}  [${what}; ${r.serviceManager}]`);
    }
    return r.settled ? 0 : exitNotSettled;
  });
}

export async function regCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, booleans);
  const [target, action, key, ...rest] = args.positionals;
  const usage = [
    "usage: guru reg AGENT list KEY",
    "       guru reg AGENT get KEY [NAME]            (no NAME: the default value)",
    "       guru reg AGENT set KEY NAME TYPE VALUE…  [--dry-run]   TYPE: sz, expand_sz, multi_sz (one VALUE per string), dword, qword, binary (hex)",
    "       guru reg AGENT delete KEY NAME           [--dry-run]",
    "       (each with --json)",
  ].join("\n");
  if (key === undefined || !["list", "get", "set", "delete"].includes(action ?? "")) throw new GuruError("invalid", usage);
  const json = args.flags.json === true;
  const dryRun = args.flags["dry-run"] === true;
  return inTunnel("reg", args, target, usage, async (api, sessionId) => {
    switch (action) {
      case "list": {
        const r = await api.system.listRegistry({ sessionId, key });
        if (json) out(JSON.stringify({ key: r.key, subkeys: r.subkeys, values: r.values.map(valueJson) }));
        else {
          for (const s of r.subkeys) out(`${r.key}\\${s}\\`);
          for (const v of r.values) out(`${(v.name || "(default)").padEnd(24)}  ${valueText(v)}`);
        }
        return 0;
      }
      case "get": {
        const r = await api.system.readRegistry({ sessionId, key, valueName: rest[0] ?? "" });
        out(json ? JSON.stringify({ key: r.key, value: valueJson(r.value) }) : valueText(r.value));
        return 0;
      }
      case "set": {
        const [valueName, typeName, ...data] = rest;
        const typeText = (typeName ?? "").toLowerCase().replace(/^reg_/, "") as TypeName;
        const type = registryValueTypes.includes(typeText) ? apiValueType(typeText) : undefined;
        if (valueName === undefined || type === undefined || (data.length === 0 && type !== RegistryValueType.MULTI_SZ)) throw new GuruError("invalid", usage);
        const multi = type === RegistryValueType.MULTI_SZ;
        const r = await api.system.writeRegistry({
          sessionId,
          key,
          valueName,
          type,
          value: multi ? "" : data.join(" "),
          multiString: multi ? data : [],
          dryRun,
        });
        if (json) out(JSON.stringify({ key: r.key, dryRun: r.dryRun, before: valueJson(r.before), after: valueJson(r.after) }));
        else out(`${r.key}\\${valueName}${r.dryRun ? " (dry run)" : ""}: ${valueText(r.before)} → ${valueText(r.after)}`);
        return 0;
      }
      default: {
        const valueName = rest[0];
        if (valueName === undefined) throw new GuruError("invalid", usage);
        const r = await api.system.deleteRegistryValue({ sessionId, key, valueName, dryRun });
        if (json) out(JSON.stringify({ key: r.key, dryRun: r.dryRun, before: valueJson(r.before), after: r.dryRun ? valueJson(r.before) : null }));
        else out(`${r.key}\\${valueName}${r.dryRun ? " (dry run, kept)" : " deleted"}: was ${valueText(r.before)}`);
        return 0;
      }
    }
  });
}
