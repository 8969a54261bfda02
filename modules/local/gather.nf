// Join the parts of a split task into the artifact the single task would have written: encoding shards
// (--encode_shards; included as GATHER_EMBEDDINGS) or partial alpha grids (--sweep_shards; as GATHER_GRID).
// Command: templates/gather.sh (gather.py embeddings|grid); one task per row of PLAN's tasks/GATHER_*.json.
// The parts are staged as parts/<part id>: the row's options name them in PLAN's order, not arrival order.
process GATHER {
    tag "${row.id}"
    label 'process_low'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(parts, stageAs: 'parts/*')

    output:
    tuple val(row), path("${row.id}"), emit: gathered
    path 'versions.yml', topic: versions

    script:
    template 'gather.sh'

    stub:
    template 'stub/gather.sh'
}
