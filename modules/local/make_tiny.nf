// The `test` profile's models: a tiny random source retriever and domain LLM over the collection's words.
process MAKE_TINY {
    tag "${meta.collection}"
    label 'process_low'

    input:
    tuple val(meta), path(collection)

    output:
    tuple val(meta), path('tiny'), emit: models
    path 'versions.yml',           emit: versions

    script:
    """
    make_tiny.py models \\
        --collection ${collection} \\
        --out tiny \\
        --seed ${meta.seed} \\
        --layers ${meta.layers}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir -p tiny/source tiny/domain
    touch tiny/source/config.json tiny/domain/config.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
