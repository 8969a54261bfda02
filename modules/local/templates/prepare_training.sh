prepare_training.py mine --collection ${collection} --model ${model} --out ${row.id}/train.jsonl --attempt ${task.attempt} ${row.options} ${task.ext.args ?: ''}
versions.py --process ${task.process} --out versions.yml
