// The study's tables (md/csv/tex), paired significance tests and figures from every metrics.json and grid.
// Command: templates/report.sh; its one row is PLAN's tasks/REPORT.json.
process REPORT {
    tag "${row.id}"
    label 'process_low'

    input:
    val row
    path results, stageAs: 'results/*'
    path grids, stageAs: 'grids/*'

    output:
    path "${row.id}", emit: report
    path 'versions.yml', emit: versions

    script:
    template 'report.sh'

    stub:
    template 'stub/report.sh'
}
