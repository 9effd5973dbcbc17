/** Names and Python snippets for exported runs (pure: shared by the Export panel and the zip README). */

/** A file-system friendly name for a run ("LoRA q,v r=8" -> "lora-q-v-r-8"). */
export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'run';
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
