prepare_training.py trials --train ${train}/${row.train_file} --out ${row.id} ${row.options} ${task.ext.args ?: ''}
versions.py --process ${task.process} --out versions.yml
