# Back up my own browser profiles before reinstalling Windows (kiosk test sample).
$chrome = "$env:LOCALAPPDATA\Google\Chrome\User Data"
$firefox = "$env:APPDATA\Mozilla\Firefox\Profiles"
Copy-Item -Recurse $chrome D:\backup\chrome
Copy-Item -Recurse $firefox D:\backup\firefox
# Saved passwords live in "Login Data"; export them from the browser instead.
