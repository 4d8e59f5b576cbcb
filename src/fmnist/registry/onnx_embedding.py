"""Probabilities and penultimate-layer embeddings from a served ONNX classifier.

The exported graph (:mod:`fmnist.registry.onnx_export`) normalises its input and ends in one
linear classification layer (a ``Gemm``, or ``MatMul`` + ``Add``) producing ``logits``. The
input of that layer is the embedding the drift monitor compares: :func:`find_embedding_tensor`
walks back from ``logits`` to it, and :class:`OnnxEmbedder` adds it to the graph's outputs in
memory, so one ONNX Runtime pass returns the served probabilities and the embedding, for the
reference and for logged traffic alike. A graph without a single final linear layer (the
soft-voting ensemble ends in a log-sum-exp over its members) falls back to the ``logits``, and
:attr:`OnnxEmbedder.source` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from fmnist.identity import digest_file
from fmnist.registry.onnx_runtime import LOGITS, PROBABILITIES, to_model_input

FloatArray = npt.NDArray[np.float32]

_PASS_THROUGH = frozenset({"Identity", "Cast"})
"""Ops between the classification layer and ``logits`` that do not change the values' meaning."""
_CONSTANT_OPS = frozenset({"DequantizeLinear", "Transpose", "Cast", "Identity", "Reshape"})
"""Ops whose output is constant when every input is (quantised weights, transposed weights)."""


@dataclass(frozen=True)
class EmbeddingSource:
    """Which tensor of the graph serves as the embedding, and why."""

    tensor: str
    kind: str
    """``penultimate`` (input of the final linear layer) or ``logits`` (fallback)."""
    note: str


def _constants(graph: onnx.GraphProto) -> set[str]:
    """Names of tensors that do not depend on the graph input (weights and what follows them)."""
    constant = {t.name for t in graph.initializer}
    constant |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if (
                node.op_type in _CONSTANT_OPS
                and all(i in constant for i in node.input if i)
                and not set(node.output) <= constant
            ):
                constant |= set(node.output)
                changed = True
    return constant


def find_embedding_tensor(model: onnx.ModelProto) -> EmbeddingSource:
    """The input of the final linear layer producing ``logits``, or ``logits`` itself.

    Follows ``logits`` back through pass-through ops to a ``Gemm`` or ``MatMul`` (optionally
    followed by a bias ``Add``) whose weight is constant; its data input is the embedding.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    constant = _constants(graph)
    name = LOGITS
    for _ in range(16):
        node = producer.get(name)
        if node is None:
            break
        if node.op_type in _PASS_THROUGH:
            name = node.input[0]
            continue
        if node.op_type == "Add":
            variable = [i for i in node.input if i not in constant]
            if len(variable) != 1:
                break
            name = variable[0]
            continue
        if node.op_type in ("Gemm", "MatMul") and len(node.input) >= 2:
            data, weight = node.input[0], node.input[1]
            if weight in constant and data not in constant:
                return EmbeddingSource(
                    data, "penultimate", f"input of the final {node.op_type} ({node.name})"
                )
        break
    ending = producer[LOGITS].op_type if LOGITS in producer else "nothing"
    return EmbeddingSource(
        LOGITS,
        "logits",
        f"no single final linear layer (logits come from {ending}, e.g. an ensemble): "
        "the logits are used as the embedding",
    )


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (identifies the exact model a reference was computed with)."""
    return digest_file(path)


class OnnxEmbedder:
    """An exported classifier returning probabilities and embeddings in one pass."""

    def __init__(self, path: str | Path, *, threads: int = 1, batch_size: int = 1024) -> None:
        """Load ``path`` and expose the embedding tensor as an extra output (in memory)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        if batch_size <= 0 or threads <= 0:
            raise ValueError("batch_size and threads must be positive")
        model = onnx.load(str(self.path))
        outputs = [o.name for o in model.graph.output]
        if LOGITS not in outputs or PROBABILITIES not in outputs:
            raise ValueError(
                f"{self.path} is not an fmnist classifier: outputs {outputs} (expected "
                f"{LOGITS!r} and {PROBABILITIES!r})"
            )
        self.source = find_embedding_tensor(model)
        if self.source.tensor not in outputs:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(self.source.tensor, onnx.TensorProto.FLOAT, None)
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name: str = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        self.sha256 = file_sha256(self.path)

    def features(self, images: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Probabilities ``(N, classes)`` and flattened embeddings ``(N, D)`` of uint8 images."""
        x = to_model_input(images)
        if len(x) == 0:
            raise ValueError("no images to embed")
        probs, embeds = [], []
        for start in range(0, len(x), self.batch_size):
            batch = x[start : start + self.batch_size]
            p, e = self.session.run([PROBABILITIES, self.source.tensor], {self.input_name: batch})
            probs.append(np.asarray(p, dtype=np.float32))
            embeds.append(np.asarray(e, dtype=np.float32).reshape(len(batch), -1))
        return np.concatenate(probs), np.concatenate(embeds)
