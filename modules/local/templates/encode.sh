encode.py --model ${model} --collection ${collection} --out ${row.id} --attempt ${task.attempt} ${row.options} ${task.ext.args ?: ''}
versions.py --process ${task.process} --out versions.yml
