"""Own sigmoid exp(x) / (1 + exp(x)) instead of the stable one given: inf / inf = NaN for
pre-activations around +1000. Correct for moderate inputs.
"""

import numpy as np


def sigmoid(x):
    with np.errstate(over='ignore', invalid='ignore'):
        return np.exp(x) / (1 + np.exp(x))
