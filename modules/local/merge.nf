// Layer-wise linear merge of the source retriever and the domain LLM (alpha = the source's weight per half).
process MERGE {
    tag "${meta.id}"
    label 'process_high'

    input:
    tuple val(meta), path(source), path(domain), val(recipe)

    output:
    tuple val(meta), path('merged'), emit: model
    path 'versions.yml',             emit: versions

    script:
    def restore = recipe.restore_source_embeddings == 'true' ? '--restore-source-embeddings' : '--no-restore-source-embeddings'
    """
    merge.py \\
        --source ${source} \\
        --domain ${domain} \\
        --alpha-lower ${meta.alpha_lower} \\
        --alpha-upper ${meta.alpha_upper} \\
        --out merged \\
        --method ${recipe.merge_method} \\
        --dtype ${recipe.merge_dtype} \\
        --split-layer ${recipe.split_layer} \\
        ${restore}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir merged
    touch merged/config.json merged/model.safetensors merged/provenance.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
