"""torch modules, free of scikit-learn: encoders, the vision-language model, GNN stacks."""
