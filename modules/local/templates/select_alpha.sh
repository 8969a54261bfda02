report.py select-alpha --grid ${grid} --queries ${train}/${row.train_file} --out alpha.json ${row.options} ${task.ext.args}
plan.py chosen --tasks ${tasks} --select ${row.id} --alpha alpha.json --out ${row.id}
versions.py --process ${task.process} --out versions.yml
