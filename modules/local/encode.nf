// Embeddings of a collection's eval split for the source, a merged model or the source + a LoRA adapter.
process ENCODE {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(model), path(adapter), path(collection), val(recipe)

    output:
    tuple val(meta), path('embeddings'), emit: embeddings
    path 'versions.yml',                 emit: versions

    script:
    def adapter_opt = adapter ? "--adapter ${adapter}" : ''
    // retries come after exit 75 (GPU out of memory) or a resource kill: halve the batch each time
    def batch_size = Math.max(1, (recipe.batch_size as int).intdiv(1 << (task.attempt - 1)))
    def instruction = recipe.query_instruction.replace("'", "'\\''")
    """
    encode.py \\
        --model ${model} ${adapter_opt} \\
        --collection ${collection} \\
        --out embeddings \\
        --split ${recipe.eval_split} \\
        --pooling ${recipe.pooling} \\
        --query-instruction '${instruction}' \\
        --max-length ${recipe.max_length} \\
        --batch-size ${batch_size} \\
        --dtype ${recipe.dtype} \\
        --device ${params.device} \\
        --no-progress
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir embeddings
    touch embeddings/queries.npy embeddings/corpus.npy embeddings/queries.ids embeddings/corpus.ids embeddings/meta.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
