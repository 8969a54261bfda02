cat > recipe.json <<'RECIPE'
${row.recipe}
RECIPE
lora_train.py --model ${model} --train ${train}/${row.train_file} --out ${row.id} ${row.options} ${task.ext.args ?: ''}
versions.py --process ${task.process} --out versions.yml
