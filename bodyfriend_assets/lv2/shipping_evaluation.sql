-- Shipping_Evaluation__c: customers' ratings of deliveries (R_SHIPPING_EVALUATION), fed to
-- hc.shipping_evaluation, related to the shipment, contract and customer.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_SHIPPING_EVALUATION
SELECT
    CAST(e.eval_seq AS text) AS external_id,
    e.shipping_no AS shipping_info_external_id,
    e.order_no AS opportunity_external_id,
    e.cust_no AS account_external_id,
    e.eval_dt AS evaluation_date,
    e.eval_score_nm AS rating,
    CASE WHEN e.eval_score_cd ~ '^[1-5]$' THEN CAST(e.eval_score_cd AS integer) END AS rating_score,
    e.kindness_score,
    e.punctuality_score,
    e.install_score AS installation_score,
    e.eval_comment AS comment,
    e.updt_dt AS erp_updated_at
FROM lv1.r_shipping_evaluation AS e
