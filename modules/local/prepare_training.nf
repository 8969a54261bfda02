// The full-data training set (Tevatron jsonl): labelled queries of the train split with the source model's
// top-ranked non-relevant documents as hard negatives.
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
    def n_queries = meta.n_queries ? "--queries ${meta.n_queries}" : ''
    def batch_size = Math.max(1, (recipe.batch_size as int).intdiv(1 << (task.attempt - 1)))
    """
    prepare_training.py mine \\
        --collection ${collection} \\
        --model ${model} \\
        --out train.jsonl \\
        --split ${recipe.train_split} \\
        --negatives ${lora.negatives} \\
        --seed ${meta.seed} \\
        --max-length ${lora.passage_max_length} \\
        --batch-size ${batch_size} \\
        --device ${params.device} \\
        ${n_queries}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    touch train.jsonl train.jsonl.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
