// The study's tables (md/csv/tex), paired significance tests and figures from every metrics.json and grid.
// Command: templates/report.sh; its one row is PLAN's tasks/REPORT.json.
process REPORT {
    tag "${row.id}"
    label 'process_low'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    val row
    path results, stageAs: 'results/*'
    path grids, stageAs: 'grids/*'

    output:
    path "${row.id}", emit: report
    path 'versions.yml', topic: versions

    script:
    template 'report.sh'

    stub:
    template 'stub/report.sh'
}
