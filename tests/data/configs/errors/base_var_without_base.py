lr = {{_base_.optimizer.lr}}
