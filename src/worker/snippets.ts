/** Names and Python snippets for exported runs (pure: shared by the Export panel and the zip README). */
import type { AdapterFormat } from '../adapters/options';

/** A file-system friendly name for a run ("LoRA q,v r=8" -> "lora-q-v-r-8"). */
export function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'run'
  );
}

/** Python that loads an exported adapter with PEFT (shown in the Export panel and written into the zip). */
export function peftSnippet(baseModel: string, adapterDir: string, prompt = 'Once upon a time'): string {
  return [
    'from peft import PeftModel',
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    '',
    `base = ${JSON.stringify(baseModel)}  # the base model: a Hub id or the local folder you trained on`,
    `model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), ${JSON.stringify(adapterDir)})`,
    'tokenizer = AutoTokenizer.from_pretrained(base)',
    '',
    `inputs = tokenizer(${JSON.stringify(prompt)}, return_tensors="pt")`,
    'output = model.generate(**inputs, max_new_tokens=48, do_sample=False)',
    'print(tokenizer.decode(output[0], skip_special_tokens=True))',
  ].join('\n');
}

export function mergedSnippet(modelDir: string): string {
  return [
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    '',
    `model = AutoModelForCausalLM.from_pretrained(${JSON.stringify(modelDir)})`,
    `tokenizer = AutoTokenizer.from_pretrained(${JSON.stringify(modelDir)})`,
  ].join('\n');
}

/** The command that continues a run at scale (README, Export panel). */
export const SCALE_OUT_COMMAND =
  'accelerate launch --config_file accelerate_config.yaml train_peft.py --data your.jsonl';

/** accelerate's config for one machine with several GPUs (one process per GPU). */
export function accelerateConfig(): string {
  return `# accelerate launch --config_file accelerate_config.yaml train_peft.py --data your.jsonl
# One machine, one process per GPU (DistributedDataParallel). Set num_processes to your GPU count,
# or override it: accelerate launch --num_processes 8 ...
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
machine_rank: 0
num_processes: 2
gpu_ids: all
# bf16 needs Ampere or newer (A100, H100, RTX 30xx+); use 'no' on older GPUs.
mixed_precision: bf16
downcast_bf16: 'no'
main_training_function: main
rdzv_backend: static
same_network: true
tpu_use_cluster: false
tpu_use_sudo: false
use_cpu: false
`;
}

/**
 * The oldest PEFT release that loads an exported adapter folder, per format (checked against huggingface/peft's
 * tags): rank_pattern/alpha_pattern came in 0.6.0, use_rslora in 0.8.0 and use_dora in 0.9.0, and the LoRA
 * adapter_config.json names all of them; PEFT before 0.14.0 refuses a config key it does not know (TypeError:
 * unexpected keyword argument), so a LoRA folder needs 0.9.0. GraloraConfig (hybrid_r, gralora_k) came in 0.19.0.
 */
/** The oldest PEFT that reads each format as exported (AdaLoRA: the keys PEFT 0.14 writes, boolean rank_pattern). */
export const MIN_PEFT = { lora: '0.9', gralora: '0.19', adalora: '0.14' } as const;

/**
 * train_peft.py: continues training an exported adapter with transformers + peft + accelerate + datasets.
 * Everything about the adapter (method, r, alpha, targets, per-module ranks and alphas, k, hybrid rank) is
 * read from the adapter_config.json beside it at run time, never restated here.
 */
export function trainPeftScript(runName: string, baseModel: string, format: AdapterFormat = 'lora'): string {
  // Names go into comments only: no quoting to get wrong whatever characters they hold.
  const oneLine = (text: string) => text.replace(/[\r\n]+/g, ' ');
  return `# Exported by LoRA Studio from the run: ${oneLine(runName)}
# Base model: ${oneLine(baseModel)}
"""Continue training an adapter exported by LoRA Studio, on one machine with several GPUs.

    pip install "transformers>=4.40" "peft>=${MIN_PEFT[format]}" "accelerate>=0.30" datasets
    ${SCALE_OUT_COMMAND}

PEFT >= ${MIN_PEFT.lora} reads a LoRA adapter_config.json as exported (it names use_rslora and use_dora, and PEFT
before 0.14 refuses keys it does not know); GraLoRA needs PEFT >= ${MIN_PEFT.gralora}, AdaLoRA PEFT >= ${MIN_PEFT.adalora}.
--base names the base model (a folder or a Hub id) when adapter_config.json's base_model_name_or_path is neither.

The adapter is described by adapter_config.json beside this script (PEFT's own format):
  - peft_type LORA (LoRA, rsLoRA, DoRA, GoRA, GeLoRA, PiSSA and LoRA-GA converted for the original base, or
    GraLoRA exported as plain LoRA): a LoraConfig with its r, lora_alpha, target_modules, rank_pattern,
    alpha_pattern, use_rslora and use_dora, so per-module ranks stay as the studio allocated them (GoRA's and
    GeLoRA's scales are folded into B there: lora_alpha = r per module);
  - peft_type ADALORA: an AdaLoraConfig with its init_r, target_r, schedule (tinit, tfinal, deltaT, beta1, beta2,
    orth_reg_weight; total_step is --steps) and rank_pattern; with --fresh the budget schedule runs again
    (update_and_allocate after every optimizer step), otherwise the exported ranks stay fixed;
  - peft_type GRALORA: a GraloraConfig (PEFT >= ${MIN_PEFT.gralora}) with its r, alpha, gralora_k, hybrid_r, target_modules.
By default training resumes from the exported weights; --fresh starts a new adapter with the same config
(PEFT's initialisation: GoRA's gradient initialisation is not reproduced).

Data (--data): .jsonl/.json/.csv/.parquet with a "text" column, "prompt"/"completion", Alpaca
"instruction"/"input"/"output", chat "messages" (rendered with the tokenizer's chat template, only the
assistant turns supervised) or pre-tokenized "input_ids" (+ "labels"); or .txt, documents separated by
blank lines. Plain text is packed into --seq-len token rows, as in the studio.
"""
import argparse
import json
import math
import os
import re

import peft
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import load_dataset
from peft import LoraConfig, PeftModel, get_peft_model
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
IGNORE = -100
# The oldest PEFT that reads each adapter_config.json (see the docstring).
MIN_PEFT = {"LORA": "${MIN_PEFT.lora}", "GRALORA": "${MIN_PEFT.gralora}", "ADALORA": "${MIN_PEFT.adalora}"}
# A Hugging Face Hub model id: owner/name.
HUB_ID = re.compile(r"[A-Za-z0-9][\\w.-]*/[A-Za-z0-9][\\w.-]*")
ALPACA = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\\n\\n### Instruction:\\n{instruction}\\n\\n### Response:\\n"
)
ALPACA_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\\n\\n"
    "### Instruction:\\n{instruction}\\n\\n### Input:\\n{input}\\n\\n### Response:\\n"
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="training data file")
    p.add_argument("--adapter", default=HERE, help="the exported adapter folder (default: this script's folder)")
    p.add_argument("--base", default=None, help="base model: Hub id or folder (default: base_model_name_or_path in adapter_config.json)")
    p.add_argument("--out", default=os.path.join(HERE, "continued"), help="where the trained adapter is saved")
    p.add_argument("--fresh", action="store_true", help="start a new adapter with the same config instead of the exported weights")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (linear warmup, cosine decay to 10%%)")
    p.add_argument("--warmup", type=int, default=30, help="linear warmup steps")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per GPU per micro-batch")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    return p.parse_args()


def read_adapter_config(folder):
    with open(os.path.join(folder, "adapter_config.json")) as f:
        return json.load(f)


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\\d+", text)[:3])


def check_peft(cfg, installed=None):
    """Stops with the PEFT version to install when the installed one cannot read this adapter_config.json."""
    installed = installed or peft.__version__
    need = MIN_PEFT.get(cfg.get("peft_type"))
    if need and version_tuple(installed) < version_tuple(need):
        raise SystemExit(
            'this %s adapter needs PEFT >= %s, and PEFT %s is installed: pip install -U "peft>=%s"'
            % (cfg["peft_type"], need, installed, need)
        )


def base_model(arg, cfg):
    """--base, or adapter_config.json's base_model_name_or_path where Python can load it: a folder here or a Hub id."""
    if arg:
        return arg
    name = cfg.get("base_model_name_or_path")
    if not name:
        raise SystemExit("--base is required: adapter_config.json names no base model (pass the base model's folder or Hub id)")
    if os.path.isdir(name) or HUB_ID.fullmatch(name):
        return name
    raise SystemExit(
        "--base is required: adapter_config.json names the base model %r, which is neither a folder here nor a "
        "Hugging Face Hub id (owner/name). Pass --base with the folder of the model the adapter was trained on "
        "(config.json, *.safetensors, tokenizer.json) or its Hub id, e.g. --base path/to/%s" % (name, os.path.basename(os.path.normpath(name)) or "model")
    )


def peft_config(cfg, total_steps):
    """The PEFT config of the exported adapter, field by field from its adapter_config.json."""
    common = dict(
        target_modules=cfg["target_modules"],
        fan_in_fan_out=cfg.get("fan_in_fan_out", False),
        bias=cfg.get("bias", "none"),
        task_type="CAUSAL_LM",
    )
    if cfg["peft_type"] == "GRALORA":
        from peft import GraloraConfig  # PEFT >= ${MIN_PEFT.gralora}

        return GraloraConfig(r=cfg["r"], alpha=cfg["alpha"], gralora_k=cfg["gralora_k"], hybrid_r=cfg.get("hybrid_r", 0), **common)
    if cfg["peft_type"] == "ADALORA":
        from peft import AdaLoraConfig

        schedule = {k: cfg[k] for k in ("init_r", "target_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight")}
        return AdaLoraConfig(lora_alpha=cfg["lora_alpha"], total_step=total_steps, **schedule, **common)
    if cfg["peft_type"] != "LORA":
        raise SystemExit("adapter_config.json: peft_type %r is not LORA, GRALORA or ADALORA" % cfg["peft_type"])
    return LoraConfig(
        r=cfg["r"],
        lora_alpha=cfg["lora_alpha"],
        rank_pattern=cfg.get("rank_pattern") or {},
        alpha_pattern=cfg.get("alpha_pattern") or {},
        use_rslora=cfg.get("use_rslora", False),
        use_dora=cfg.get("use_dora", False),
        lora_dropout=cfg.get("lora_dropout", 0.0),
        **common,
    )


def load_records(path):
    # datasets decompresses a .gz data file itself: the type is the name's before it.
    name = path[:-3] if path.lower().endswith(".gz") else path
    ext = os.path.splitext(name)[1].lower()
    if ext == ".txt":
        return load_dataset("text", data_files=path, sample_by="paragraph", split="train")
    if ext == ".tsv":
        return load_dataset("csv", data_files=path, delimiter="\\t", split="train")
    builder = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(ext)
    if builder is None:
        raise SystemExit("%s: unsupported file type %r (use .jsonl, .json, .csv, .tsv, .parquet or .txt, or .gz of them)" % (path, ext))
    return load_dataset(builder, data_files=path, split="train")


def detect_format(columns):
    cols = set(columns)
    if "messages" in cols:
        return "chat"
    if "input_ids" in cols:
        return "tokens"
    if {"instruction", "output"} <= cols:
        return "alpaca"
    if {"prompt", "completion"} <= cols:
        return "prompt_completion"
    if "text" in cols:
        return "text"
    raise SystemExit("no known columns in %s: need text, prompt/completion, instruction/output, messages or input_ids" % sorted(cols))


def encode(tokenizer, segments, seq_len, eos_after, add_special_tokens=True):
    """Tokenizes (text, supervised) segments as one string; labels are -100 outside the supervised spans."""
    text = "".join(s for s, _ in segments)
    spans, pos = [], 0
    for s, supervised in segments:
        if supervised:
            spans.append((pos, pos + len(s)))
        pos += len(s)
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True, truncation=True, max_length=seq_len - 1)
    ids = list(enc["input_ids"])
    labels = [
        tid if end > start and any(a <= start < b for a, b in spans) else IGNORE
        for tid, (start, end) in zip(ids, enc["offset_mapping"])
    ]
    if eos_after and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    return {"input_ids": ids, "labels": labels}


def chat_segments(tokenizer, messages):
    """Each assistant turn is the text it adds to the conversation rendered up to the turn before it."""
    segments, done = [], ""
    for i, m in enumerate(messages):
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if m["role"] == "assistant":
            prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
            if prompt.startswith(done) and upto.startswith(prompt):
                segments += [(prompt[len(done):], False), (upto[len(prompt):], True)]
                done = upto
                continue
        segments.append((upto[len(done):], False))
        done = upto
    return segments


def tokenize(records, tokenizer, seq_len, source="--data"):
    if len(records) == 0:
        raise SystemExit("%s: no records, so no training rows" % source)
    fmt = detect_format(records.column_names)

    def one(r):
        if fmt == "text":
            return encode(tokenizer, [(r["text"], True)], seq_len, eos_after=True)
        if fmt == "prompt_completion":
            return encode(tokenizer, [(r["prompt"], False), (r["completion"], True)], seq_len, eos_after=True)
        if fmt == "alpaca":
            template = ALPACA_INPUT if (r.get("input") or "").strip() else ALPACA
            prompt = template.format(instruction=r["instruction"], input=r.get("input") or "")
            return encode(tokenizer, [(prompt, False), (r["output"], True)], seq_len, eos_after=True)
        if fmt == "chat":
            # The chat template writes its own special tokens.
            return encode(tokenizer, chat_segments(tokenizer, r["messages"]), seq_len, eos_after=False, add_special_tokens=False)
        ids = list(r["input_ids"])[:seq_len]
        labels = list(r["labels"])[:seq_len] if r.get("labels") is not None else ids
        return {"input_ids": ids, "labels": labels}

    examples = records.map(one, remove_columns=records.column_names)
    data = examples.filter(lambda r: any(l != IGNORE for l in r["labels"][1:]))
    if fmt == "text":
        data = data.map(lambda batch: pack(batch, seq_len), batched=True)
    if len(data) == 0:
        # Said here, not as the DataLoader's "num_samples should be a positive integer value, but got num_samples=0".
        raise SystemExit(no_rows_message(source, fmt, seq_len, len(examples), sum(len(ids) for ids in examples["input_ids"])))
    return data


def no_rows_message(source, fmt, seq_len, examples, tokens):
    if fmt == "text":
        return (
            "%s: no training rows: its text is %d tokens, less than one row of --seq-len %d tokens (plain text is packed "
            "into full rows). Lower --seq-len or add text." % (source, tokens, seq_len)
        )
    return (
        "%s: no training rows: none of its %d examples has a supervised token (a label other than -100 after the first "
        "position): every label is -100, or the answers were cut off at --seq-len %d. Check the labels or answer "
        "columns, or raise --seq-len." % (source, examples, seq_len)
    )


def pack(batch, seq_len):
    """Plain text: documents (each ending in EOS) concatenated and cut into full seq_len rows."""
    flat = [t for ids in batch["input_ids"] for t in ids]
    rows = [flat[i : i + seq_len] for i in range(0, len(flat) - seq_len + 1, seq_len)]
    return {"input_ids": rows, "labels": [list(r) for r in rows]}


def collate(pad_id):
    def fn(rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return fn


def lr_lambda(warmup, total):
    """Linear warmup, then cosine decay to 10% of the peak (the studio's schedule)."""
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def main():
    args = parse_args()
    accelerator = Accelerator(gradient_accumulation_steps=args.grad_accum)
    set_seed(args.seed)
    cfg = read_adapter_config(args.adapter)
    check_peft(cfg)
    base = base_model(args.base, cfg)

    tokenizer = AutoTokenizer.from_pretrained(base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    with accelerator.main_process_first():
        data = tokenize(load_records(args.data), tokenizer, args.seq_len, args.data)
    accelerator.print("%d training rows from %s" % (len(data), args.data))

    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype="auto")
    if args.fresh:
        model = get_peft_model(model, peft_config(cfg, args.steps))
    else:
        model = PeftModel.from_pretrained(model, args.adapter, is_trainable=True)
    if accelerator.is_main_process:
        model.print_trainable_parameters()

    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, collate_fn=collate(pad_id))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    # Stepped by hand once per optimizer step (not prepared: accelerate would step it once per process).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(args.warmup, args.steps))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    # A fresh AdaLoRA adapter prunes its ranks on its budget schedule, from each step's gradients.
    adalora = args.fresh and cfg["peft_type"] == "ADALORA"
    model.train()
    step = 0
    while step < args.steps:
        for batch in loader:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                if adalora and accelerator.sync_gradients:
                    accelerator.unwrap_model(model).base_model.update_and_allocate(step)
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            if step % args.log_every == 0 or step == args.steps:
                mean = accelerator.gather(loss.detach().reshape(1)).mean().item()
                accelerator.print(json.dumps({"step": step, "loss": round(mean, 6), "lr": scheduler.get_last_lr()[0]}))
            if step >= args.steps:
                break

    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(args.out, is_main_process=accelerator.is_main_process, save_function=accelerator.save)
    if accelerator.is_main_process:
        tokenizer.save_pretrained(args.out)
        print("saved the adapter to %s" % args.out)


if __name__ == "__main__":
    main()
`;
}
