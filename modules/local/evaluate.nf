// Rank the eval split with the embeddings and score it: run.trec + metrics.json, tagged with the task's meta.
process EVALUATE {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(embeddings), path(collection), val(recipe)

    output:
    tuple val(meta), path("${meta.id}"), emit: results
    path 'versions.yml',                 emit: versions

    script:
    def drop_first = recipe.drop_first_qrel == 'true' ? '--drop-first-qrel' : ''
    def tags = ['collection', 'arm', 'setting', 'trial', 'alpha_lower', 'alpha_upper', 'alpha_selection']
        .findAll { k -> meta[k] != null && meta[k] != '' }
        .collect { k -> "--tag ${k}=${meta[k]}" }
        .join(' ')
    """
    evaluate.py \\
        --embeddings ${embeddings} \\
        --collection ${collection} \\
        --out ${meta.id} \\
        --split ${recipe.eval_split} \\
        --depth ${recipe.depth} \\
        ${drop_first} ${tags}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir ${meta.id}
    touch ${meta.id}/run.trec ${meta.id}/metrics.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
