download.py model --out ${row.id} ${row.options} ${task.ext.args ?: ''}
versions.py --process ${task.process} --out versions.yml
