// The Windows backends without Windows: the argv they build (a fixed script,
// parameters only as base64 data) and their parsing of PowerShell and
// reg.exe output, English and German.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { decodeEncodedCommand, powershellArgv } from "./powershell.ts";
import { parseRegQuery, regAddArgv, regDeleteArgv, regQueryArgv } from "./reg-exe-registry.ts";
import type { ToolRunner } from "./run-tool.ts";
import { createWindowsRegistry, parseListing, parseRead, writeParams } from "./windows-registry.ts";
import { createWindowsServices, parseServiceGet, parseServiceList } from "./windows-services.ts";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

/** A runner that records argv and answers with a fixture. */
function fakeRunner(stdout: string, code = 0) {
  const calls: { file: string; args: readonly string[] }[] = [];
  const run: ToolRunner = async (file, args) => {
    calls.push({ file, args });
    return { code, signal: "", stdout, stderr: "" };
  };
  return { run, calls };
}

function paramsOf(script: string): Record<string, unknown> {
  const b64 = /FromBase64String\('([A-Za-z0-9+/=]*)'\)/.exec(script)?.[1];
  return JSON.parse(Buffer.from(b64 ?? "", "base64").toString("utf8")) as Record<string, unknown>;
}

describe("PowerShell argv", () => {
  it("is a fixed script with the parameters only as base64 data", () => {
    const hostile = `x'; Remove-Item C:\\ -Recurse; '$(calc)"`;
    const argv = powershellArgv("Get-Service -Name $p.name", { name: hostile });
    expect(argv.slice(0, 5)).toEqual(["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand"]);
    expect(argv).toHaveLength(6);
    const script = decodeEncodedCommand(argv);
    expect(script).not.toContain("Remove-Item");
    expect(script).not.toContain("calc");
    expect(script).toContain("[Console]::OutputEncoding = [System.Text.Encoding]::UTF8");
    expect(script).toContain("Get-Service -Name $p.name");
    expect(paramsOf(script)).toEqual({ name: hostile });
  });

  it("refuses parameters that would not fit the command line", () => {
    expect(() => powershellArgv("x", { data: "a".repeat(9000) })).toThrow(GuruError);
  });
});

describe("Windows services", () => {
  it("parses the Win32_Service listing by WMI's fixed identifiers (English)", () => {
    const services = parseServiceList(JSON.parse(fixture("win-cim-services-en.json")));
    expect(services).toHaveLength(12);
    const byName = Object.fromEntries(services.map((s) => [s.name, s]));
    expect(byName.Spooler).toEqual({
      name: "Spooler",
      displayName: "Print Spooler",
      state: "running",
      startMode: "automatic",
      pid: 2876,
      description:
        "This service spools print jobs and handles interaction with the printer.  If you turn off this service, you won’t be able to print or see your printers.",
    });
    expect(byName.RemoteRegistry).toMatchObject({ state: "stopped", startMode: "disabled", pid: 0 });
    expect(byName.TrustedInstaller.state).toBe("starting");
    expect(byName.VSS.state).toBe("stopping");
    expect(byName["Bonjour Service"].state).toBe("running");
    expect(byName.CDPUserSvc_4f1a2.description).toBe("");
    expect(byName.ZeroConfigSvc).toMatchObject({
      state: "paused",
      displayName: "Zero & Config <Vendor> Agent",
      description: "Vendor's zero-configuration agent.",
    });
  });

  it("parses a German system's listing the same way: only names and descriptions are translated", () => {
    const services = parseServiceList(JSON.parse(fixture("win-cim-services-de.json")));
    const spooler = services.find((s) => s.name === "Spooler")!;
    expect(spooler).toMatchObject({ displayName: "Druckwarteschlange", state: "running", startMode: "automatic", pid: 2876 });
    expect(spooler.description).toContain("Druckaufträge");
    expect(services.find((s) => s.name === "BITS")!.displayName).toBe("Intelligenter Hintergrundübertragungsdienst");
    expect(services.map((s) => s.state)).toEqual(["stopped", "running", "running", "running", "stopped", "running", "starting", "stopped"]);
    expect(services.find((s) => s.name === "RemoteRegistry")!.startMode).toBe("disabled");
  });

  it("reads one service from Get-Service's enum numbers, with Win32_Service beside it or not", () => {
    expect(parseServiceGet(JSON.parse(fixture("win-get-service-de.json")))).toMatchObject({
      name: "Spooler",
      displayName: "Druckwarteschlange",
      state: "running",
      startMode: "automatic",
      pid: 2876,
    });
    expect(parseServiceGet(JSON.parse(fixture("win-get-service-nocim.json")))).toEqual({
      name: "wuauserv",
      displayName: "Windows Update",
      state: "stopping",
      startMode: "manual",
      pid: 0,
      description: "",
    });
  });

  it("classifies a caught error by its identifier, whatever the language of its message", async () => {
    const { run } = fakeRunner(fixture("win-error-de.json"));
    const err = await createWindowsServices({ run })
      .get("nosuchsvc")
      .catch((e: unknown) => e as GuruError);
    expect(err).toBeInstanceOf(GuruError);
    expect((err as GuruError).kind).toBe("not_found");
    expect((err as GuruError).message).toContain("nosuchsvc");
  });

  it("builds the control call with the name and action as data", async () => {
    const { run, calls } = fakeRunner('{"ok":true}');
    await createWindowsServices({ run, powershell: "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" }).perform("Bonjour Service", "restart", {
      waitMs: 5000,
    });
    expect(calls[0].file).toBe("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe");
    const script = decodeEncodedCommand(calls[0].args);
    expect(paramsOf(script)).toEqual({ name: "Bonjour Service", action: "restart", waitMs: 5000 });
    expect(script).toContain("$s.Start()");
    expect(script).not.toContain("Bonjour");
  });
});

describe("Windows registry through PowerShell", () => {
  it("parses kinds, unsigned DWORD/QWORD, binary, multi-strings and unexpanded strings", () => {
    const listing = parseListing("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion", JSON.parse(fixture("win-registry-list.json")));
    expect(listing.subkeys).toEqual(["Accessibility", "AppCompatFlags", "Windows"]);
    const v = Object.fromEntries(listing.values.map((x) => [x.name, x]));
    expect(v.ProductName).toEqual({ name: "ProductName", type: "sz", data: "Windows 10 Pro", multiString: [] });
    expect(v.SystemRoot.data).toBe("C:\\Windows");
    expect(v.PathName).toMatchObject({ type: "expand_sz", data: "%SystemRoot%" });
    expect(v.CurrentMajorVersionNumber).toMatchObject({ type: "dword", data: "10" });
    expect(v.Flags).toMatchObject({ type: "dword", data: "4294967295" });
    expect(v.InstallTime).toMatchObject({ type: "qword", data: "133170048000000000" });
    expect(v.Timestamp).toMatchObject({ type: "qword", data: "18446744073709551614" });
    expect(v.DigitalProductId).toMatchObject({ type: "binary", data: "a40000000300000030303333 30".replace(" ", "") });
    expect(v.Suites.multiString).toEqual(["Terminal Server", "Personal"]);
    expect(v.OneSuite.multiString).toEqual(["Terminal Server"]);
    expect(v.NoSuites).toMatchObject({ type: "multi_sz", multiString: [] });
    expect(v.Marker).toMatchObject({ type: "none", data: "" });
  });

  it("reads a value (German locale data) and an absent one", () => {
    expect(parseRead(JSON.parse(fixture("win-registry-read-de.json")))).toEqual({ name: "sLongDate", type: "sz", data: "dddd, d. MMMM yyyy", multiString: [] });
    expect(parseRead({ value: null })).toBeUndefined();
  });

  it("writes through .NET with the value converted from the agent's text form", async () => {
    expect(writeParams("HKEY_CURRENT_USER\\Software\\Vendor", { name: "Port", type: "dword", data: "0x1f90", multiString: [] })).toEqual({
      hive: "HKCU",
      path: "Software\\Vendor",
      key: "HKCU\\Software\\Vendor",
      name: "Port",
      kind: 4,
      data: "8080",
      multi: [],
    });
    expect(writeParams("HKLM\\SOFTWARE\\V", { name: "Blob", type: "binary", data: "01 02 ff", multiString: [] }).data).toBe(
      Buffer.from([1, 2, 255]).toString("base64"),
    );
    const { run, calls } = fakeRunner('{"ok":true}');
    await createWindowsRegistry({ run }).write("HKLM\\SOFTWARE\\V", { name: "a'; rm", type: "sz", data: "$(x)", multiString: [] });
    const script = decodeEncodedCommand(calls[0].args);
    expect(script).toContain("$k.SetValue($p.name, $d,");
    expect(paramsOf(script)).toMatchObject({ hive: "HKLM", path: "SOFTWARE\\V", name: "a'; rm", data: "$(x)", kind: 1 });
  });

  it("refuses bad values and keys before anything runs", async () => {
    const { run, calls } = fakeRunner('{"ok":true}');
    const reg = createWindowsRegistry({ run });
    const bad = [
      () => reg.write("HKLM\\SOFTWARE\\V", { name: "n", type: "dword", data: "4294967296", multiString: [] }),
      () => reg.write("HKLM\\SOFTWARE\\V", { name: "n", type: "dword", data: "-1", multiString: [] }),
      () => reg.write("HKLM\\SOFTWARE\\V", { name: "n", type: "binary", data: "0g", multiString: [] }),
      () => reg.write("HKXX\\SOFTWARE", { name: "n", type: "sz", data: "", multiString: [] }),
      () => reg.list("HKLM\\SOFTWARE\\*"),
      () => reg.list("HKLM\\SOFTWARE\\\\x"),
    ];
    for (const call of bad) expect(((await call().catch((e: unknown) => e)) as GuruError).kind).toBe("invalid");
    expect(calls).toEqual([]);
  });
});

describe("Windows registry through reg.exe", () => {
  it("parses values, types and subkeys (English)", () => {
    const l = parseRegQuery(fixture("reg-query-en.txt"), "HKLM\\SOFTWARE\\Vendor\\App");
    expect(l.key).toBe("HKLM\\SOFTWARE\\Vendor\\App");
    expect(l.subkeys).toEqual(["Plugins", "Settings"]);
    expect(l.values).toEqual([
      { name: "", type: "sz", data: "Vendor App", multiString: [] },
      { name: "Version", type: "sz", data: "2.4.1", multiString: [] },
      { name: "Port", type: "dword", data: "8080", multiString: [] },
      { name: "Flags", type: "binary", data: "0102ff", multiString: [] },
      { name: "Paths", type: "multi_sz", data: "", multiString: ["C:\\a", "C:\\b"] },
      { name: "Big", type: "qword", data: "4294967296", multiString: [] },
      { name: "Install Dir", type: "expand_sz", data: "%ProgramFiles%\\Vendor", multiString: [] },
    ]);
  });

  it("skips the translated unset default value of a German system", () => {
    const l = parseRegQuery(fixture("reg-query-de.txt"), "HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor\\App");
    expect(l.values).toEqual([{ name: "Version", type: "sz", data: "2.4.1", multiString: [] }]);
    expect(l.subkeys).toEqual(["Einstellungen"]);
  });

  it("builds argv with the name and data as separate arguments", () => {
    expect(regQueryArgv("HKCU\\Software\\V", "")).toEqual(["query", "HKCU\\Software\\V", "/ve"]);
    expect(regQueryArgv("HKCU\\Software\\V", "a b")).toEqual(["query", "HKCU\\Software\\V", "/v", "a b"]);
    expect(regAddArgv("HKCU\\Software\\V", { name: "x & y", type: "multi_sz", data: "", multiString: ["a", "b"] })).toEqual([
      "add",
      "HKCU\\Software\\V",
      "/v",
      "x & y",
      "/t",
      "REG_MULTI_SZ",
      "/d",
      "a\\0b",
      "/f",
    ]);
    expect(regAddArgv("HKCU\\Software\\V", { name: "", type: "dword", data: "0x10", multiString: [] })).toEqual([
      "add",
      "HKCU\\Software\\V",
      "/ve",
      "/t",
      "REG_DWORD",
      "/d",
      "16",
      "/f",
    ]);
    expect(regDeleteArgv("HKCU\\Software\\V", "x")).toEqual(["delete", "HKCU\\Software\\V", "/v", "x", "/f"]);
  });
});
