// Every chart of the library, as the `plot` namespace notebooks use: plot.learningCurves(run), ...
export { learningCurves, LiveCurves } from "./curves";
export type { CurveAxis, CurveOptions } from "./curves";
export { modeComparison, sweep } from "./comparison";
export { confusionMatrix, datasetCounts, Gallery, misclassified, perClass } from "./results";
export { featureMap, principalComponents } from "./features";
export { network, NetworkDiagram } from "./network";
export { featuresBeforeAfter, gradCam, weightChange } from "./inside";
