"""Training for the count certificates (DPA, Finite Aggregation, bagging): many small base
models, each on its own subset of the training set, trained as lanes of one wide network
(:mod:`certsmooth.models.wide`) without a Python loop over the models."""
