report.py select-alpha --grid ${grid} --queries ${train}/${row.train_file} --out alpha.json ${row.options} ${task.ext.args ?: ''}
cat > arm.json <<'MERGEIR_ARM'
${row.arm}
MERGEIR_ARM
plan.py chosen --arm arm.json --alpha alpha.json --out ${row.id}
versions.py --process ${task.process} --out versions.yml
