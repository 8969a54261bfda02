mkdir ${row.id}
echo '- process: ${task.process}' > versions.yml
