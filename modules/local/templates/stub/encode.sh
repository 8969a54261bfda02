mkdir ${row.id}
touch ${row.id}/queries.npy ${row.id}/corpus.npy ${row.id}/queries.ids ${row.id}/corpus.ids ${row.id}/meta.json
echo '- process: ${task.process}' > versions.yml
