"""The machinery the three plugin packages share, in one neutral home that imports no ML framework.

- `registry`: plugin discovery through entry points and pluggy (`PluginRegistry`);
- `outputs`: outputs written to a hidden temporary sibling and renamed into place (`staged_dir`, `staged_file`);
- `offline`: the Hugging Face offline defaults our command lines set (`set_offline_env`);
- the task layer every package evaluates with: `data` and `task_data` (dataset specs), `verifiers`, `generation`,
  `evaluate`, `tokenization`, and its plugin registry (`plugins`, `hookspecs`: verifiers, datasets, checks);
- `sharding`: which engine shards a model's parameters;
- `adapters`: the one reader of PEFT LoRA adapter directories (`read_peft_adapter`);
- `cli`: one command-line convention (`InputError` → one line, exit 2; runtime failure → one line, exit 1;
  Ctrl-C → one line, exit 130) and the one `plugins` listing;
- `tokenizer_check`: does a loaded tokenizer tokenize like the `tokenizer.json` saved beside it;
- for tests, examples and benchmarks: `testing` (tiny offline models and tokenizers) and `run_record` (the code
  and machine a benchmark's results record).

`trl_distillguard`, `peft_orthoreg` and `mergekit_plugins` import from here; nothing here imports them.

Example:
    >>> from distill_ortho_merge.cli import InputError
    >>> issubclass(InputError, ValueError)
    True
"""

from distill_ortho_merge.plugins import load_plugins, registry  # noqa: E402

__all__ = ["load_plugins", "registry"]
