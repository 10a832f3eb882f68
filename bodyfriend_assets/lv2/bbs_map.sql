-- BBS_Map__c: the sales lounges and shops on Salesforce's map (V_SALES_LOUNGE), fed to
-- hc.bbs_map (the old func_lv2_to_hc_bbs_map). One row per lounge: name, type, address, phone,
-- position, opening hours. The position is rounded to 6 decimals (about 0.1 m), the scale of a
-- Salesforce geolocation; a lounge is active while in use and not closed. The address is the
-- one refined by lv1ex where it was (lv1.address_master: street and postal code), else as the
-- ERP holds it.
--
-- key: external_id
-- mode: full
-- source: RENTAL.V_SALES_LOUNGE
SELECT
    l.lounge_cd AS external_id,
    l.lounge_nm AS name,
    l.lounge_type_nm AS lounge_type,
    l.sales_org AS sales_org,
    coalesce(refined.postal_code, l.zip_cd) AS postal_code,
    coalesce(refined.street, NULLIF(concat_ws(' ', l.addr1, l.addr2), '')) AS street,
    l.tel_no AS phone,
    round(CAST(l.latitude AS numeric), 6) AS latitude,
    round(CAST(l.longitude AS numeric), 6) AS longitude,
    CASE WHEN l.open_time ~ '^[0-2][0-9][0-5][0-9]$'
        THEN substr(l.open_time, 1, 2) || ':' || substr(l.open_time, 3, 2) END AS opening_time,
    CASE WHEN l.close_time ~ '^[0-2][0-9][0-5][0-9]$'
        THEN substr(l.close_time, 1, 2) || ':' || substr(l.close_time, 3, 2) END AS closing_time,
    l.open_dt AS opened_date,
    coalesce(l.use_yn, false) AND NOT coalesce(l.close_yn, false) AS is_active,
    l.updt_dt AS erp_updated_at
FROM lv1.v_sales_lounge AS l
LEFT JOIN lv1.refined_addresses() AS refined
    ON refined.legacy_address = lv1.legacy_address(l.addr1, l.addr2)
