// The `test` profile's models: a tiny random source retriever and domain LLM over the collection's words.
process MAKE_TINY {
    tag "${meta.collection}"
    label 'process_low'

    input:
    tuple val(meta), path(collection)

    output:
    tuple val(meta), path('models'), emit: models
    path 'versions.yml',           emit: versions

    script:
    """
    make_tiny.py models \\
        --collection ${collection} \\
        --out models \\
        --seed ${meta.seed} \\
        --layers ${meta.layers}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir -p models/source models/domain
    touch models/source/config.json models/domain/config.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
