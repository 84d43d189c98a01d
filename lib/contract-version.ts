// The contract version this code implements (CONTRACT.md, "Current version");
// reported by GetCapabilities. The contract check fails when the two differ.
export const contractVersion = "0.3.0";
