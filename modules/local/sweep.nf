// The alpha grid on a collection's labelled queries, merged in memory (no merged model is written).
process SWEEP {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(source), path(domain), path(collection), val(recipe)

    output:
    tuple val(meta), path("${meta.id}"), emit: grid
    path 'versions.yml',                 emit: versions

    script:
    // retries come after exit 75 (GPU out of memory) or a resource kill: halve the batch each time
    def batch_size = Math.max(1, (recipe.batch_size as int).intdiv(1 << (task.attempt - 1)))
    def restore = recipe.restore_source_embeddings == 'true' ? '--restore-source-embeddings' : '--no-restore-source-embeddings'
    def instruction = recipe.query_instruction.replace("'", "'\\''")
    """
    sweep.py \\
        --source ${source} \\
        --domain ${domain} \\
        --collection ${collection} \\
        --out ${meta.id} \\
        --split ${recipe.train_split} \\
        --grid ${recipe.grid} \\
        --split-layer ${recipe.split_layer} \\
        --pooling ${recipe.pooling} \\
        --query-instruction '${instruction}' \\
        --max-length ${recipe.max_length} \\
        --batch-size ${batch_size} \\
        --dtype ${recipe.dtype} \\
        --device ${params.device} \\
        --depth ${recipe.sweep_depth} \\
        ${restore}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir -p ${meta.id}/points
    touch ${meta.id}/grid.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
