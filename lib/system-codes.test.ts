import { describe, expect, it } from "vitest";
import * as api from "../gen/guru/api/v1/system_pb.js";
import * as wire from "../gen/guru/wire/v1/system_pb.js";
import { registryValueTypes, serviceActions, serviceStates, startModes } from "./system-codes.ts";

const pairs = [
  ["ServiceState", api.ServiceState, wire.ServiceState],
  ["ServiceStartMode", api.ServiceStartMode, wire.ServiceStartMode],
  ["ServiceAction", api.ServiceAction, wire.ServiceAction],
  ["RegistryValueType", api.RegistryValueType, wire.RegistryValueType],
] as const;

describe("system enum numbers", () => {
  it.each(pairs)("guru.api.v1 and guru.wire.v1 number %s alike, so one table serves both", (_name, apiEnum, wireEnum) => {
    expect(apiEnum).toEqual(wireEnum);
  });

  it("maps every name to its number and back, and an unknown number to undefined", () => {
    for (const table of [serviceStates, startModes, serviceActions, registryValueTypes] as const) {
      for (const code of [0, 1, 2, 3, 4, 5, 6, 7]) {
        const name = (table.name as (c: number) => string | undefined)(code);
        if (name !== undefined) expect((table.code as (n: string) => number)(name)).toBe(code);
      }
      expect(table.name(99)).toBeUndefined();
    }
    expect(serviceActions.name(0)).toBeUndefined();
    expect(startModes.name(0)).toBe("unspecified");
  });
});
