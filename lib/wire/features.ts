// Named wire behaviours an agent announces in Hello.features, beyond what
// agents of neighbouring versions assume, so a server uses one only with an
// agent that has it.

/** FileWriteRequest.sha256 may be empty; FileWriteFinish.sha256 then carries the whole file's hash. */
export const uploadSha256AtFinish = "upload_sha256_at_finish";

/** Every feature this build's agent has. */
export const agentWireFeatures: readonly string[] = [uploadSha256AtFinish];
