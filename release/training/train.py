"""Training a classifier with PyTorch: the training loop, evaluation, and a model that learns.

You implement three functions:

* :func:`build_model` returns a ``torch.nn.Module`` that maps a batch of 8x8 digit images,
  flattened to 64 features (pixel values scaled to [0, 1]), to 10 class scores (logits).
* :func:`train` runs the training loop of the lectures for a number of epochs and returns the
  mean training loss of each epoch.
* :func:`evaluate` returns the accuracy of a model on the examples of a data loader.

The grader trains ``build_model()`` with your ``train`` on 1,437 of scikit-learn's 1,797 digit
images and measures the accuracy itself, on 500 held-out images of digits that are in no public
data set: your code never sees their labels. ``build_model()`` must return an untrained network
(the grader measures it before training too), and the grader measures the loss itself.
It also watches *how* your loop trains (see each docstring), because several common mistakes
still give a decent accuracy.

Conventions (the tests check exactly these):

* the loss is ``torch.nn.CrossEntropyLoss()`` (mean over the batch) applied to the model's raw
  outputs, the logits: no softmax in the model or before the loss;
* the loader is iterated as it is (``for x, y in loader``): shuffling is the loader's job;
* ``optimizer.zero_grad()`` and ``optimizer.step()`` once per batch;
* every tensor goes to ``device`` (``"cpu"`` or ``"cuda"``), which the grader passes in;
* losses and accuracies are returned as Python floats (``loss.item()``), never as tensors.
"""

import torch
from torch import nn


def build_model():
    """A classifier for flattened 8x8 digit images.

    Input: a float32 tensor of shape (N, 64), pixel values in [0, 1].
    Output: a tensor of shape (N, 10), the logits (raw class scores, *not* probabilities:
    ``nn.CrossEntropyLoss`` applies log-softmax itself).

    A multi-layer perceptron is enough, for example
    ``Linear(64, 128) -> ReLU -> Linear(128, 10)``. Keep it small: the grader trains it for
    30 epochs on one CPU thread within a time budget of 60 s (a model of this size needs about
    a second). Create the layers here, so that each call returns a new, freshly initialised
    model: the grader measures it before training as well, and a model that is already accurate
    then (pre-trained weights, stored images) earns no accuracy points.

    Returns a ``torch.nn.Module``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("build_model: replace this line with your implementation")


def train(model, loader, optimizer, epochs, device):
    """Train ``model`` for ``epochs`` passes over ``loader``; return the loss of each epoch.

    The training framework of the lectures, for every batch ``(x, y)`` of the loader:

    1. ``optimizer.zero_grad()``: clear the gradients of the previous batch (PyTorch *adds*
       new gradients to ``.grad``, so without this step every update uses the sum of all
       gradients so far);
    2. forward: ``logits = model(x)``;
    3. loss: ``loss = criterion(logits, y)`` with ``criterion = nn.CrossEntropyLoss()``, on the
       raw logits (CrossEntropyLoss includes the softmax);
    4. backward: ``loss.backward()`` computes the gradient of the loss with respect to every
       parameter;
    5. step: ``optimizer.step()`` updates the parameters with those gradients.

    Before the loop, move the model to ``device`` (``model.to(device)``) and put it in
    training mode (``model.train()``: it may have been left in evaluation mode, and layers such
    as dropout behave differently in the two modes). Move each batch to ``device`` too.

    Iterate over the loader as it is, ``for x, y in loader``: do not shuffle, sort or skip
    batches yourself (the loader already shuffles when it should).

    The loss of an epoch is the mean of the per-example losses over the whole epoch: add
    ``loss.item() * x.shape[0]`` for each batch and divide by the number of examples at the end
    of the epoch (reset the sum at the start of every epoch). Use ``loss.item()``, a Python
    float: adding the loss tensor itself keeps every batch's computation graph alive.

    Inputs:
    - model: a ``torch.nn.Module`` returning logits (N, C).
    - loader: a ``torch.utils.data.DataLoader`` yielding ``(x, y)``: x float32 (N, D),
      y int64 (N,) class indices.
    - optimizer: a ``torch.optim`` optimizer over ``model.parameters()``.
    - epochs: int, the number of passes over the loader.
    - device: ``"cpu"`` or ``"cuda"``.

    Returns a list of ``epochs`` Python floats, the mean training loss of each epoch.
    """
    # YOUR CODE HERE
    raise NotImplementedError("train: replace this line with your implementation")


def evaluate(model, loader, device):
    """Accuracy of ``model`` on the examples of ``loader``: a Python float in [0, 1].

    Put the model in evaluation mode (``model.eval()``) and turn off gradient tracking
    (``with torch.no_grad():``): evaluation needs neither dropout nor a computation graph.
    Move the model and each batch to ``device``; the predicted class of an example is the
    index of its largest logit (``logits.argmax(dim=1)``).

    The accuracy is the number of correct predictions divided by the number of examples, over
    the whole loader. (The mean of per-batch accuracies is not the same when the last batch is
    smaller than the others.)

    Inputs:
    - model: a ``torch.nn.Module`` returning logits (N, C).
    - loader: a ``torch.utils.data.DataLoader`` yielding ``(x, y)`` as in :func:`train`.
    - device: ``"cpu"`` or ``"cuda"``.

    Returns a Python float, correct / total.
    """
    # YOUR CODE HERE
    raise NotImplementedError("evaluate: replace this line with your implementation")
