// The version of guru.integration.v1 this code implements (CONTRACT.md,
// "Package versions"); reported by GetCapabilities. The contract check fails
// when the two differ, and when the package changed since the released image
// of this version.
export const integrationContractVersion = "1.0.0";

/** Every package's version; guru.api.v1 and guru.wire.v1 follow the contract version. */
export function packageVersions(contractVersion: string): Record<string, string> {
  return { "guru.integration.v1": integrationContractVersion, "guru.api.v1": contractVersion, "guru.wire.v1": contractVersion };
}
