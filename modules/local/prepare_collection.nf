// A collection in the shared layout (BEIR files + collection.json), from its upstream release or a local copy.
process PREPARE_COLLECTION {
    tag "${meta.collection}"
    label 'process_low'

    input:
    tuple val(meta), val(download), path(source, stageAs: 'upstream/*')

    output:
    tuple val(meta), path("${meta.collection}"), emit: collection
    path 'versions.yml',                         emit: versions

    script:
    // beir:<path> names a local BEIR folder; the upstream collections take --source for a local copy
    def name = download == 'beir' ? "beir:${source}" : download
    def source_opt = (source && download != 'beir') ? "--source ${source}" : ''
    def revision_opt = meta.revision ? "--revision ${meta.revision}" : ''
    """
    download.py collection ${name} \\
        --out ${meta.collection} \\
        ${source_opt} ${revision_opt}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir -p ${meta.collection}/qrels
    touch ${meta.collection}/corpus.jsonl ${meta.collection}/queries.jsonl ${meta.collection}/collection.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
