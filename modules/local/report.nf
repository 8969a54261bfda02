// The study's tables (md/csv/tex), paired significance tests and figures from every metrics.json and grid.
process REPORT {
    label 'process_low'

    input:
    path results, stageAs: 'results/*'
    path grids, stageAs: 'grids/*'

    output:
    path 'report',       emit: report
    path 'versions.yml', emit: versions

    script:
    def grid_opt = grids ? '--grid grids' : ''
    """
    report.py build \\
        --results results \\
        ${grid_opt} \\
        --out report
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir report
    touch report/report.md
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
