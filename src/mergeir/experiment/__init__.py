"""An experiment as data (data/paper.yaml, data/test.yaml, a user's --experiment FILE).

The file names models (pinned Hugging Face revisions or tiny built ones), collections (each with its domain
model, query instruction, eval/train split and the published alpha and LoRA steps per setting and trial), and
the merge / encoding / evaluation / LoRA recipes. `load_experiment` validates everything up front with one
message naming the file and the key at fault; mergeir.pipeline.tasks plans the pipeline's tasks from it;
`published_alpha` gives the authors' α of a collection, setting and trial (α selection `paper`),
`parse_selection` reads a comma-separated choice among the experiment's keys (--dataset, --settings).

specs: the frozen dataclasses, one per section · reader: typed access to the YAML tree · sections: one reader
per section · load: the file and its top level.
"""

from .load import load_experiment
from .specs import (ALPHA_SELECTIONS, FORMAT, MERGE_METHODS, POOLINGS, SETTINGS, CollectionSpec, EncodingSpec,
                    EvaluationSpec, Experiment, LoraSpec, MergeSpec, ModelSpec, SettingSpec, TinySpec, TrialSpec,
                    parse_selection, published_alpha)

__all__ = ["ALPHA_SELECTIONS", "FORMAT", "MERGE_METHODS", "POOLINGS",
           "SETTINGS", "CollectionSpec", "EncodingSpec", "EvaluationSpec", "Experiment", "LoraSpec", "MergeSpec",
           "ModelSpec", "SettingSpec", "TinySpec", "TrialSpec", "load_experiment",
           "parse_selection", "published_alpha"]
