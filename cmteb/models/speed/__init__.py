"""The speed devices of the model cores: each makes a forward pass cheaper without changing what it computes
(checked against the plain pass in tests/). `truncation` tokenises only the prefix truncation keeps,
`first_token` runs the last layer for the first token alone where CLS pooling reads only it, `streams` runs one
forward pass per CPU core at once, `masks` decides the attention mask on the host, and `traced` replays a
GPU's whole passes from a checked trace."""
