// inception-lab: everything the notebooks call, one import away.
export { tf } from "./tf";
export { environment, budget, Environment } from "./environment";
export type { Budget, EnvironmentInfo } from "./environment";
export { Displayable, Table, LiveOutput, displayBundle, inKernel } from "./display";
export type { MimeBundle } from "./display";
