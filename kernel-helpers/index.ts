// inception-lab: everything the notebooks call, one import away.
export { tf } from "./tf";
export { environment, budget, Environment } from "./environment";
export type { Budget, EnvironmentInfo } from "./environment";
export { Displayable, Table, LiveOutput, displayBundle, inKernel } from "./display";
export type { MimeBundle } from "./display";
export { loadInceptionV3, Inception, ModelSummary } from "./model";
export type { LoadOptions, WeightsOption, WeightsSource, Prediction, BlockRow } from "./model";
export { buildInceptionV3, BLOCKS, CUT_LAYERS, MIN_INPUT_SIZE } from "./inception";
export type { Block, CutLayer, Preprocessing } from "./inception";
export { BatchNorm } from "./batch-norm";
export type { ImageInput } from "./images";
export { cacheDir } from "./download";
