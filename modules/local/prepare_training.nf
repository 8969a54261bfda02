// Every labelled query of the train split with the source model's top-ranked non-relevant documents as hard
// negatives (Tevatron jsonl + sidecar). The full setting's set, and the pool the limited trials come from.
process PREPARE_TRAINING {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(collection), path(model), val(recipe)
    val lora

    output:
    tuple val(meta), path('train.jsonl'), path('train.jsonl.json'), emit: train
    path 'versions.yml',                                           emit: versions

    script:
    // retries come after exit 75 (GPU out of memory) or a resource kill: halve the batch each time
    def batch_size = Math.max(1, (recipe.batch_size as int).intdiv(1 << (task.attempt - 1)))
    def instruction = recipe.query_instruction.replace("'", "'\\''")
    """
    prepare_training.py mine \\
        --collection ${collection} \\
        --model ${model} \\
        --out train.jsonl \\
        --split ${recipe.train_split} \\
        --negatives ${lora.negatives} \\
        --pooling ${recipe.pooling} \\
        --max-length ${recipe.max_length} \\
        --query-instruction '${instruction}' \\
        --batch-size ${batch_size} \\
        --device ${params.device} \\
        --no-progress
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    touch train.jsonl train.jsonl.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
