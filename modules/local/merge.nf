// Layer-wise linear merge of the source retriever and the domain LLM (alpha = the source's weight per half).
// Command: templates/merge.sh; one task per row of PLAN's tasks/MERGE.json.
process MERGE {
    tag "${row.id}"
    label 'process_high'

    input:
    tuple val(row), path(domain, stageAs: 'domain'), path(source, stageAs: 'source')

    output:
    tuple val(row), path("${row.id}"), emit: model
    path 'versions.yml', emit: versions

    script:
    template 'merge.sh'

    stub:
    template 'stub/merge.sh'
}
