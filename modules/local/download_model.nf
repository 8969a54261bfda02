// A Hugging Face model pinned to a commit (or copied from a local upstream-format folder) + provenance.json.
process DOWNLOAD_MODEL {
    tag "${meta.model}"
    label 'process_low'

    input:
    tuple val(meta), val(repo_id), val(revision), path(source, stageAs: 'upstream/*')

    output:
    tuple val(meta), path("${meta.model}"), emit: model
    path 'versions.yml',                    emit: versions

    script:
    def source_opt = source ? "--source ${source}" : ''
    """
    download.py model ${repo_id} \\
        --revision ${revision} \\
        --out ${meta.model} \\
        ${source_opt}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir ${meta.model}
    touch ${meta.model}/config.json ${meta.model}/provenance.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
