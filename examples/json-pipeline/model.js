// The model of trainer.json: a small MLP for the regression, built for each branch's parameters.
// It is left uncompiled: the trainer stage compiles it with the item's loss and the grid's learning rate.
export function createModel(params, { tf }) {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: params.hidden, activation: 'relu', inputShape: [4] }));
  model.add(tf.layers.dense({ units: 1 }));
  return model;
}
