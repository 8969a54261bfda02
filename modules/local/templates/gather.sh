gather.py ${row.options} --out ${row.id} ${task.ext.args ?: ''}
versions.py --process ${task.process} --out versions.yml
