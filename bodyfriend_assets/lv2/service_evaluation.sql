-- Service_Evaluation__c: customers' ratings of service visits (R_SERVICE_EVALUATION), fed to
-- hc.service_evaluation, related to the service receipt, contract and customer.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_SERVICE_EVALUATION
SELECT
    CAST(e.eval_seq AS text) AS external_id,
    e.receipt_no AS service_receipt_external_id,
    e.order_no AS opportunity_external_id,
    e.cust_no AS account_external_id,
    e.eval_dt AS evaluation_date,
    e.eval_score_nm AS rating,
    CASE WHEN e.eval_score_cd ~ '^[1-5]$' THEN CAST(e.eval_score_cd AS integer) END AS rating_score,
    e.kindness_score,
    e.time_score AS punctuality_score,
    e.skill_score,
    e.recommend_yn AS would_recommend,
    e.eval_chnl_nm AS channel,
    e.eval_comment AS comment,
    e.updt_dt AS erp_updated_at
FROM lv1.r_service_evaluation AS e
